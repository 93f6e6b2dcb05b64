"""云诊 server: app factory, configuration, auth, Redis store and the command line."""
