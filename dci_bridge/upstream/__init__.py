"""OpenCRVS: system-client auth, record search, webhook verification and a simulator."""
