"""`crmflow doctor [--online]`: check crmflow's configuration, and with --online what Redis and the CRMs say of it."""
