"""report.schema.json: the JSON Schema of every command's --json output (`devcheck schema`)."""
