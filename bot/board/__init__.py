"""The public board (公示栏) that `yishi serve` shows: server-rendered pages, no script."""
