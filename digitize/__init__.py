"""digitize: scans in, upright searchable Vietnamese PDFs out, linked to their dossiers."""

__version__ = "0.1.0"
