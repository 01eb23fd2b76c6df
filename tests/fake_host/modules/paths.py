models_path = "/nonexistent-webui/models"
