ui_settings_callbacks = []


def on_ui_settings(fn):
    ui_settings_callbacks.append(fn)
