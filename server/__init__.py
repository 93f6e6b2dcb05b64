"""云诊 server: the composition root (command line, app factory, configuration) and the HTTP edge
(server/http/)."""
