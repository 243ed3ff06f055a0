"""The Streamlit dashboard (see issue: Dashboard)."""
