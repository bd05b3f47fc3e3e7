// Placeholder: generates schema/infra.schema.json from the zod schema (see src/inventory).
