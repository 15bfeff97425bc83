"""Read models and sign-in for the web pages and the public status page: values, never HTML (adapters/web renders)."""
