"""Request handlers: decode a request frame, run the API, encode the response.

Requests and responses are kafka-python's own protocol classes; the broker
advertises (via ApiVersions) exactly the version ranges in :data:`API_VERSIONS`
-- roughly the API set of an Apache Kafka 2.2 broker, so the client
negotiates down to non-flexible versions it fully understands.
"""

from __future__ import annotations

import io
import logging
import time

import kafka.errors as Errors
from kafka.protocol.admin import (
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    ListGroupsRequest,
    ListGroupsResponse,
)
from kafka.protocol.api_header import RequestHeader
from kafka.protocol.api_key import ApiKey
from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
)

from .log import LEADER_EPOCH, ValidationError, decode_produce_records, topic_name_error

log = logging.getLogger(__name__)

#: api key -> (request class, response class, min version, max version)
API_VERSIONS = {
    ApiKey.Produce: (ProduceRequest, ProduceResponse, 3, 7),
    ApiKey.Fetch: (FetchRequest, FetchResponse, 4, 10),
    ApiKey.ListOffsets: (ListOffsetsRequest, ListOffsetsResponse, 1, 5),
    ApiKey.Metadata: (MetadataRequest, MetadataResponse, 0, 7),
    ApiKey.OffsetCommit: (OffsetCommitRequest, OffsetCommitResponse, 2, 6),
    ApiKey.OffsetFetch: (OffsetFetchRequest, OffsetFetchResponse, 1, 5),
    ApiKey.FindCoordinator: (FindCoordinatorRequest, FindCoordinatorResponse, 0, 2),
    ApiKey.JoinGroup: (JoinGroupRequest, JoinGroupResponse, 0, 4),
    ApiKey.Heartbeat: (HeartbeatRequest, HeartbeatResponse, 0, 2),
    ApiKey.LeaveGroup: (LeaveGroupRequest, LeaveGroupResponse, 0, 2),
    ApiKey.SyncGroup: (SyncGroupRequest, SyncGroupResponse, 0, 2),
    ApiKey.DescribeGroups: (DescribeGroupsRequest, DescribeGroupsResponse, 0, 2),
    ApiKey.ListGroups: (ListGroupsRequest, ListGroupsResponse, 0, 2),
    ApiKey.ApiVersions: (ApiVersionsRequest, ApiVersionsResponse, 0, 2),
    ApiKey.CreateTopics: (CreateTopicsRequest, CreateTopicsResponse, 2, 3),
    ApiKey.DeleteTopics: (DeleteTopicsRequest, DeleteTopicsResponse, 1, 3),
    ApiKey.InitProducerId: (InitProducerIdRequest, InitProducerIdResponse, 0, 1),
}

CLUSTER_ID = "fake-kafka-cluster"
LATEST, EARLIEST = -1, -2


class CloseConnection(Exception):
    """The request cannot be answered; the broker closes the connection."""


class RequestContext:
    def __init__(self, client_host):
        self.client_host = client_host
        self.client_id = None
        self.closed = False


class Handlers:
    def __init__(self, broker):
        self.broker = broker
        self.store = broker.store
        self.groups = broker.groups

    # ------------------------------------------------------------- framing
    def handle_frame(self, payload: bytes, ctx: RequestContext):
        """Decode one request frame; return the framed response bytes or None."""
        buf = io.BytesIO(payload)
        header = RequestHeader.decode(buf, flexible=False)
        api_key, version = header.request_api_key, header.request_api_version
        ctx.client_id = header.client_id
        entry = API_VERSIONS.get(api_key)
        if entry is None:
            raise CloseConnection(f"unsupported api key {api_key}")
        request_cls, _response_cls, min_v, max_v = entry
        if not min_v <= version <= max_v:
            if api_key == ApiKey.ApiVersions:
                # Like Kafka: answer with a v0 body carrying UNSUPPORTED_VERSION
                # and our ranges, so the client retries with a version we know.
                response = self._api_versions_response(0, Errors.UnsupportedVersionError.errno)
                return self._encode(response, header.correlation_id)
            raise CloseConnection(f"unsupported version {version} of api {api_key}")
        if request_cls.flexible_version_q(version):
            buf.seek(0)
            request_cls[version].parse_header(buf)
        request = request_cls.decode(payload[buf.tell():], version=version)
        handler = getattr(self, "on_" + ApiKey(api_key).name)
        response = handler(request, version, ctx)
        if response is None:
            return None
        return self._encode(response, header.correlation_id)

    @staticmethod
    def _encode(response, correlation_id):
        response.with_header(correlation_id=correlation_id)
        return bytes(response.encode(header=True, framed=True))

    # ---------------------------------------------------------- ApiVersions
    def _api_versions_response(self, version, error_code=0):
        keys = [ApiVersionsResponse.ApiVersion(api_key=int(k), min_version=v[2], max_version=v[3])
                for k, v in sorted(API_VERSIONS.items())]
        return ApiVersionsResponse(version=version, error_code=error_code, api_keys=keys,
                                   throttle_time_ms=0)

    def on_ApiVersions(self, request, version, ctx):
        return self._api_versions_response(version)

    # ------------------------------------------------------------- Metadata
    def on_Metadata(self, request, version, ctx):
        broker = self.broker
        requested = request.topics
        if version == 0 and not requested:
            requested = None  # v0: empty list means all topics
        allow_auto = request.allow_auto_topic_creation if version >= 4 else True
        topics = []
        with self.store.lock:
            if requested is None:
                names = sorted(self.store.topics)
            else:
                names = [t.name for t in requested]
            for name in names:
                topics.append(self._topic_metadata(name, allow_auto and requested is not None))
        Broker = MetadataResponse.MetadataResponseBroker
        return MetadataResponse(
            version=version, throttle_time_ms=0,
            brokers=[Broker(node_id=broker.node_id, host=broker.host, port=broker.port, rack=None)],
            cluster_id=CLUSTER_ID, controller_id=broker.node_id, topics=topics)

    def _topic_metadata(self, name, allow_auto_create):
        Topic = MetadataResponse.MetadataResponseTopic
        Partition = Topic.MetadataResponsePartition
        node = self.broker.node_id
        parts = self.store.topics.get(name)
        if parts is None:
            error = topic_name_error(name)
            if error is None:
                if allow_auto_create and self.broker.auto_create_topics:
                    self.store.create_topic(name, self.broker.default_partitions)
                    # Like Kafka: the creating request sees LEADER_NOT_AVAILABLE.
                    error = Errors.LeaderNotAvailableError
                else:
                    error = Errors.UnknownTopicOrPartitionError
            return Topic(error_code=error.errno, name=name, is_internal=False, partitions=[])
        partitions = [Partition(error_code=0, partition_index=p.partition, leader_id=node,
                                leader_epoch=LEADER_EPOCH, replica_nodes=[node], isr_nodes=[node],
                                offline_replicas=[])
                      for p in parts]
        return Topic(error_code=0, name=name, is_internal=False, partitions=partitions)

    # -------------------------------------------------------------- Produce
    def on_Produce(self, request, version, ctx):
        acks = request.acks
        TopicResp = ProduceResponse.TopicProduceResponse
        PartResp = TopicResp.PartitionProduceResponse
        responses = []
        for topic_data in request.topic_data:
            parts = []
            for pdata in topic_data.partition_data:
                error, base, message = self._produce_partition(
                    request, acks, topic_data.name, pdata.index, pdata.records)
                log_start = 0 if error is Errors.NoError else -1
                parts.append(PartResp(index=pdata.index, error_code=error.errno, base_offset=base,
                                      log_append_time_ms=-1, log_start_offset=log_start,
                                      record_errors=[], error_message=message))
            responses.append(TopicResp(name=topic_data.name, partition_responses=parts))
        if acks == 0:
            # No response is expected; like Kafka, signal a failure by closing the connection.
            if any(p.error_code for t in responses for p in t.partition_responses):
                raise CloseConnection("acks=0 produce failed")
            return None
        return ProduceResponse(version=version, responses=responses, throttle_time_ms=0)

    def _produce_partition(self, request, acks, topic, partition, records):
        if acks not in (-1, 0, 1):
            return Errors.InvalidRequiredAcksError, -1, None
        if request.transactional_id is not None:
            return Errors.TransactionalIdAuthorizationFailedError, -1, "transactions are not supported"
        if self.store.partition(topic, partition) is None:
            return Errors.UnknownTopicOrPartitionError, -1, None
        refusal = self.broker.produce_refusals.get(topic)
        if refusal is not None:
            return refusal, -1, None
        try:
            batch, decoded, raw = decode_produce_records(records, self.store.max_message_bytes)
            base = self.store.append(topic, partition, batch, decoded, raw)
        except ValidationError as exc:
            return exc.error_type, -1, exc.message
        return Errors.NoError, base, None

    # ---------------------------------------------------------------- Fetch
    def on_Fetch(self, request, version, ctx):
        if version >= 7:
            if request.session_id != 0:
                return self._fetch_error(version, Errors.FetchSessionIdNotFoundError, request.session_id)
            if request.session_epoch not in (0, -1):
                return self._fetch_error(version, Errors.InvalidFetchSessionEpochError, 0)
        deadline = time.monotonic() + max(0, request.max_wait_ms) / 1000.0
        with self.store.cond:
            while True:
                topics, total_bytes, any_error = self._read_fetch(request, version)
                if any_error or total_bytes >= request.min_bytes or ctx.closed or self.broker.stopping:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.store.cond.wait(remaining)  # woken by every append
        # Sessionless fetch (session id 0): the client re-sends full requests.
        return FetchResponse(version=version, throttle_time_ms=0, error_code=0, session_id=0,
                             responses=topics)

    def _fetch_error(self, version, error, session_id):
        return FetchResponse(version=version, throttle_time_ms=0, error_code=error.errno,
                             session_id=session_id, responses=[])

    def _read_fetch(self, request, version):
        TopicResp = FetchResponse.FetchableTopicResponse
        PartData = TopicResp.PartitionData
        remaining = request.max_bytes if version >= 3 else 0x7FFFFFFF
        total = 0
        any_error = False
        topics = []
        read_committed = request.isolation_level == 1
        for ftopic in request.topics:
            parts = []
            for fpart in ftopic.partitions:
                plog = self.store.partition(ftopic.topic, fpart.partition)
                error = Errors.NoError
                records = b""
                hw = -1
                if plog is None:
                    error = Errors.UnknownTopicOrPartitionError
                elif version >= 9 and fpart.current_leader_epoch > LEADER_EPOCH:
                    error = Errors.UnknownLeaderEpochError
                elif version >= 9 and 0 <= fpart.current_leader_epoch < LEADER_EPOCH:
                    error = Errors.FencedLeaderEpochError
                elif not plog.log_start_offset <= fpart.fetch_offset <= plog.log_end_offset:
                    error = Errors.OffsetOutOfRangeError
                else:
                    limit = min(fpart.partition_max_bytes, max(remaining, 0))
                    records = plog.read(fpart.fetch_offset, limit, allow_oversized_first=(total == 0))
                    remaining -= len(records)
                    total += len(records)
                if plog is not None:
                    hw = plog.high_watermark
                if error is not Errors.NoError:
                    any_error = True
                parts.append(PartData(
                    partition_index=fpart.partition, error_code=error.errno, high_watermark=hw,
                    last_stable_offset=hw, log_start_offset=plog.log_start_offset if plog else -1,
                    aborted_transactions=[] if read_committed else None,
                    preferred_read_replica=-1, records=records))
            topics.append(TopicResp(topic=ftopic.topic, partitions=parts))
        return topics, total, any_error

    # ---------------------------------------------------------- ListOffsets
    def on_ListOffsets(self, request, version, ctx):
        TopicResp = ListOffsetsResponse.ListOffsetsTopicResponse
        PartResp = TopicResp.ListOffsetsPartitionResponse
        topics = []
        with self.store.lock:
            for topic in request.topics:
                parts = []
                seen = set()
                for part in topic.partitions:
                    error, ts, offset = Errors.NoError, -1, -1
                    plog = self.store.partition(topic.name, part.partition_index)
                    if part.partition_index in seen:
                        error = Errors.InvalidRequestError
                    elif plog is None:
                        error = Errors.UnknownTopicOrPartitionError
                    elif version >= 4 and part.current_leader_epoch > LEADER_EPOCH:
                        error = Errors.UnknownLeaderEpochError
                    elif part.timestamp == LATEST:
                        offset = plog.high_watermark
                    elif part.timestamp == EARLIEST:
                        offset = plog.log_start_offset
                    elif part.timestamp < 0:
                        error = Errors.InvalidRequestError
                    else:
                        found = plog.offset_for_timestamp(part.timestamp)
                        if found is not None:
                            offset, ts = found
                    seen.add(part.partition_index)
                    parts.append(PartResp(partition_index=part.partition_index, error_code=error.errno,
                                          timestamp=ts, offset=offset,
                                          leader_epoch=LEADER_EPOCH if offset >= 0 else -1))
                topics.append(TopicResp(name=topic.name, partitions=parts))
        return ListOffsetsResponse(version=version, throttle_time_ms=0, topics=topics)

    # ------------------------------------------------------ FindCoordinator
    def on_FindCoordinator(self, request, version, ctx):
        key_type = request.key_type if version >= 1 else 0
        error, message = Errors.NoError, None
        if key_type == 0 and not request.key:
            error = Errors.InvalidRequestError
        elif key_type == 1:
            error, message = Errors.CoordinatorNotAvailableError, "transactions are not supported"
        elif key_type not in (0, 1):
            error = Errors.InvalidRequestError
        ok = error is Errors.NoError
        return FindCoordinatorResponse(
            version=version, throttle_time_ms=0, error_code=error.errno, error_message=message,
            node_id=self.broker.node_id if ok else -1,
            host=self.broker.host if ok else "", port=self.broker.port if ok else -1)

    # ------------------------------------------------------- InitProducerId
    def on_InitProducerId(self, request, version, ctx):
        if request.transactional_id is not None:
            return InitProducerIdResponse(version=version, throttle_time_ms=0,
                                          error_code=Errors.NotCoordinatorError.errno,
                                          producer_id=-1, producer_epoch=-1)
        pid, epoch = self.store.init_producer_id()
        return InitProducerIdResponse(version=version, throttle_time_ms=0, error_code=0,
                                      producer_id=pid, producer_epoch=epoch)

    # ---------------------------------------------------------- group APIs
    def on_JoinGroup(self, request, version, ctx):
        protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
        arrived = time.monotonic()
        result = self.groups.join_group(
            request.group_id, request.member_id, ctx.client_id or "", ctx.client_host,
            request.session_timeout_ms, request.rebalance_timeout_ms if version >= 1 else -1,
            request.protocol_type, protocols, require_known_member_id=version >= 4)
        hold = self.broker.join_hold - (time.monotonic() - arrived)
        if hold > 0:  # as a broker waiting for a slow member to rejoin
            time.sleep(hold)
        Member = JoinGroupResponse.JoinGroupResponseMember
        return JoinGroupResponse(
            version=version, throttle_time_ms=0, error_code=result["error_code"],
            generation_id=result.get("generation_id", -1),
            protocol_name=result.get("protocol_name") or "",
            leader=result.get("leader") or "",
            member_id=result.get("member_id") or "",
            members=[Member(member_id=mid, metadata=md) for mid, md in result.get("members", [])])

    def on_SyncGroup(self, request, version, ctx):
        assignments = [(a.member_id, bytes(a.assignment)) for a in request.assignments]
        result = self.groups.sync_group(request.group_id, request.generation_id,
                                        request.member_id, assignments)
        return SyncGroupResponse(version=version, throttle_time_ms=0, error_code=result["error_code"],
                                 assignment=result.get("assignment", b""))

    def on_Heartbeat(self, request, version, ctx):
        error = self.groups.heartbeat(request.group_id, request.generation_id, request.member_id)
        return HeartbeatResponse(version=version, throttle_time_ms=0, error_code=error.errno)

    def on_LeaveGroup(self, request, version, ctx):
        error = self.groups.leave_group(request.group_id, request.member_id)
        return LeaveGroupResponse(version=version, throttle_time_ms=0, error_code=error.errno)

    def on_OffsetCommit(self, request, version, ctx):
        offsets = []
        for topic in request.topics:
            for part in topic.partitions:
                epoch = part.committed_leader_epoch if version >= 6 else -1
                offsets.append((topic.name, part.partition_index, part.committed_offset, epoch,
                                part.committed_metadata))
        results = self.groups.commit_offsets(request.group_id, request.generation_id_or_member_epoch,
                                             request.member_id, offsets)
        TopicResp = OffsetCommitResponse.OffsetCommitResponseTopic
        PartResp = TopicResp.OffsetCommitResponsePartition
        topics = [TopicResp(name=topic.name, partitions=[
            PartResp(partition_index=p.partition_index,
                     error_code=results[(topic.name, p.partition_index)].errno)
            for p in topic.partitions]) for topic in request.topics]
        return OffsetCommitResponse(version=version, throttle_time_ms=0, topics=topics)

    def on_OffsetFetch(self, request, version, ctx):
        TopicResp = OffsetFetchResponse.OffsetFetchResponseTopic
        PartResp = TopicResp.OffsetFetchResponsePartition
        if not request.group_id:
            return OffsetFetchResponse(version=version, throttle_time_ms=0, topics=[],
                                       error_code=Errors.InvalidGroupIdError.errno)
        refusal = self.broker.offset_fetch_refusal
        if refusal is not None:  # told per partition too: v1 has no top-level error
            topics = [TopicResp(name=t.name, partitions=[
                PartResp(partition_index=p, committed_offset=-1, committed_leader_epoch=-1, metadata="",
                         error_code=refusal.errno) for p in t.partition_indexes]) for t in request.topics or []]
            return OffsetFetchResponse(version=version, throttle_time_ms=0, topics=topics, error_code=refusal.errno)
        wanted = None
        if request.topics is not None:
            wanted = [(t.name, p) for t in request.topics for p in t.partition_indexes]
        by_topic = {}
        for topic, partition, committed in self.groups.fetch_offsets(request.group_id, wanted):
            if committed is None:
                part = PartResp(partition_index=partition, committed_offset=-1, committed_leader_epoch=-1,
                                metadata="", error_code=0)
            else:
                part = PartResp(partition_index=partition, committed_offset=committed.offset,
                                committed_leader_epoch=committed.leader_epoch,
                                metadata=committed.metadata if committed.metadata is not None else "",
                                error_code=0)
            by_topic.setdefault(topic, []).append(part)
        topics = [TopicResp(name=t, partitions=parts) for t, parts in by_topic.items()]
        return OffsetFetchResponse(version=version, throttle_time_ms=0, topics=topics, error_code=0)

    def on_DescribeGroups(self, request, version, ctx):
        Group = DescribeGroupsResponse.DescribedGroup
        Member = Group.DescribedGroupMember
        groups = []
        for group_id in request.groups:
            if not group_id:
                groups.append(Group(error_code=Errors.InvalidGroupIdError.errno, group_id=group_id,
                                    group_state="", protocol_type="", protocol_data="", members=[]))
                continue
            info = self.groups.describe_group(group_id)
            groups.append(Group(
                error_code=0, group_id=group_id, group_state=info["state"],
                protocol_type=info["protocol_type"], protocol_data=info["protocol_data"],
                members=[Member(**m) for m in info["members"]]))
        return DescribeGroupsResponse(version=version, throttle_time_ms=0, groups=groups)

    def on_ListGroups(self, request, version, ctx):
        Listed = ListGroupsResponse.ListedGroup
        return ListGroupsResponse(version=version, throttle_time_ms=0, error_code=0, groups=[
            Listed(group_id=g, protocol_type=pt) for g, pt in self.groups.list_groups()])

    # ----------------------------------------------------------- admin APIs
    def on_CreateTopics(self, request, version, ctx):
        Result = CreateTopicsResponse.CreatableTopicResult
        results = []
        seen = set()
        for topic in request.topics:
            error, message = self._create_topic(topic, request.validate_only, seen)
            seen.add(topic.name)
            results.append(Result(name=topic.name, error_code=error.errno, error_message=message))
        return CreateTopicsResponse(version=version, throttle_time_ms=0, topics=results)

    def _create_topic(self, topic, validate_only, seen):
        if topic.name in seen:
            return Errors.InvalidRequestError, "Duplicate topic in request"
        if topic_name_error(topic.name):
            return Errors.InvalidTopicError, f"Illegal topic name {topic.name!r}"
        if topic.assignments:
            if topic.num_partitions != -1 or topic.replication_factor != -1:
                return Errors.InvalidRequestError, "Both assignments and partitions/replication set"
            if any(list(a.broker_ids) != [self.broker.node_id] for a in topic.assignments):
                return Errors.InvalidReplicaAssignmentError, "Unknown broker in replica assignment"
            partitions = len(topic.assignments)
        else:
            partitions = topic.num_partitions
            if partitions <= 0:
                return Errors.InvalidPartitionsError, "Number of partitions must be larger than 0."
            if topic.replication_factor <= 0:
                return Errors.InvalidReplicationFactorError, "Replication factor must be larger than 0."
            if topic.replication_factor > 1:
                return (Errors.InvalidReplicationFactorError,
                        f"Replication factor: {topic.replication_factor} larger than available brokers: 1.")
        with self.store.lock:
            if topic.name in self.store.topics:
                return Errors.TopicAlreadyExistsError, f"Topic '{topic.name}' already exists."
            if not validate_only:
                configs = {c.name: c.value for c in topic.configs}
                self.store.create_topic(topic.name, partitions, configs)
        return Errors.NoError, None

    def on_DeleteTopics(self, request, version, ctx):
        Result = DeleteTopicsResponse.DeletableTopicResult
        results = []
        for name in request.topic_names:
            try:
                self.store.delete_topic(name)
                error = Errors.NoError
            except Errors.UnknownTopicOrPartitionError:
                error = Errors.UnknownTopicOrPartitionError
            results.append(Result(name=name, error_code=error.errno))
        return DeleteTopicsResponse(version=version, throttle_time_ms=0, responses=results)
