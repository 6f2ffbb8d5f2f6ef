"""The one exception type the dataset builder and loader raise for problems a user can fix."""
from alae.errors import UserError


class DatasetError(UserError, ValueError):
    """A dataset path, database or argument is unusable; the message is one line saying why and what to do."""
