"""What the catalogue tells the layers above without importing them."""

from django.dispatch import Signal

# Sent once a new release is committed (kwargs: release). The registries layer resolves its
# images; the proxy's routes drop what they keep about the app.
release_created = Signal()
# Sent once a promotion is committed (kwargs: promotion): a channel's pullable images changed.
release_promoted = Signal()
# Sent once resolving a release has ended (kwargs: release, whose status is ready or failed):
# an air-gap channel's bundle can be built now.
release_resolved = Signal()
