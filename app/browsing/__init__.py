"""Work done inside a running browser on behalf of an API caller (pages, computer use, clipboard,
fetch, the browser's files): each operation holds the browser's controller like every other holder."""
