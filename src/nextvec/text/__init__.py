"""Documents -> sentences -> capped chunks.

`read_documents(source)` yields `Record`s in a stable order (a `Document`, or a `Skipped` with a reason);
`split_sentences(text, splitter)` uses a named sentence splitter (splitters.py; the default was chosen on
a hand-written gold set, see bench/splitting.py); `chunk_sentences(sentences, max_chars)` caps each
sentence at clause or word boundaries; `merge_letterless` folds chunks with no letter or digit into
their neighbours.
"""

from nextvec.text.chunking import chunk_sentences, document_chunks, merge_letterless, split_sentences
from nextvec.text.readers import Document, Skipped, read_documents
from nextvec.text.splitters import DEFAULT_SPLITTER, SPLITTERS, get_splitter

__all__ = ["DEFAULT_SPLITTER", "SPLITTERS", "Document", "Skipped", "chunk_sentences", "document_chunks",
           "get_splitter", "merge_letterless", "read_documents", "split_sentences"]
