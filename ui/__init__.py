"""Every face: the recagent CLI, the Gradio app, the OpenAI-compatible API."""
