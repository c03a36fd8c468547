"""One controller per DCI resource."""
