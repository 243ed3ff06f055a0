"""Notifiers: where pages go to reach people (console, file, webhook, Slack, PagerDuty, Alertmanager, e-mail),
and the routing and durable outbox that decide who is paged and make sure they are."""
