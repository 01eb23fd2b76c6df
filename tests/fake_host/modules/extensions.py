def active():
    return []
