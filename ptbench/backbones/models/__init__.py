"""Networks written here because no maintained library ships them for current PyTorch; the
family modules (``images``, ``text``, ``audio``) register them with their weights and inputs."""
