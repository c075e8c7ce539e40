"""A small web app under test: it answers questions by calling the OpenAI SDK."""
