AlwaysVisible = object()


class Script:
    def elem_id(self, item_id):
        return f"script_vid2vid_{item_id}"
