# guest.mk — builds the freestanding test guest (tests/guest/) and the host-side
# tests that boot it. Placeholder until the test guest lands.
guest:
