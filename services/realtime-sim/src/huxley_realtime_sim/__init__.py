"""A local server that speaks the OpenAI Realtime websocket protocol, scripted."""
