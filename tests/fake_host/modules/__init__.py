"""A small test double of the WebUI's ``modules`` package: just the parts lib_vid2vid/host/a1111.py uses."""
