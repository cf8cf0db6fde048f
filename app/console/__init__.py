"""The console: a server-rendered dashboard for stores and dispatchers, shipped with the API."""
