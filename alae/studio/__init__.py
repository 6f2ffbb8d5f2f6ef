"""alae-studio's parts: the faces it starts from, the view and its command line, uploads, the caches, the page."""
