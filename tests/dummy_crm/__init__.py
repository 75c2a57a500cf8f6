"""A third, made-up CRM ("dummy", module "widgets"), registered only by tests: one source module plus its client."""
