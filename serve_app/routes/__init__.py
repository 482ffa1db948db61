"""The HTTP routes of the vendor reference, one module per resource: validate, authorise, call one use case."""
