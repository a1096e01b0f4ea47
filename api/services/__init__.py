"""The API's service in parts, one module per route family of api/routes/ (plus the shared core and sign-in);
api/service.py assembles them into the one ApiService the routes and the scanner door call."""
