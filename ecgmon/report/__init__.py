"""The daily report: one self-contained HTML page of a period (figures, pictures, tables)."""
