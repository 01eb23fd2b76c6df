opened = []


def open_folder(path):
    opened.append(path)
