"""The DCI use cases: plain async functions and classes that tests call without HTTP."""
