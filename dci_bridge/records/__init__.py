"""Record sources: the backend-neutral query model, FHIR -> DCI mapping, the embedded store."""
