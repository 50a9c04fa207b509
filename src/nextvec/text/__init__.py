"""Documents -> sentences -> capped chunks.

`read_documents(source)` yields `Record`s in a stable order (a `Document`, or a `Skipped` with a reason);
`split_sentences(text)` uses blingfire (a real, abbreviation-aware sentence splitter that works offline);
`chunk_sentences(sentences, max_chars)` caps each sentence at clause or word boundaries.
"""

from nextvec.text.chunking import chunk_sentences, document_chunks, split_sentences
from nextvec.text.readers import Document, Skipped, read_documents

__all__ = ["Document", "Skipped", "chunk_sentences", "document_chunks", "read_documents", "split_sentences"]
