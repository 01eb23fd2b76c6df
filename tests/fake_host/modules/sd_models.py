autodownload_enabled = []


def enable_midas_autodownload():
    autodownload_enabled.append(True)
