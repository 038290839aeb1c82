"""The PySide6 desktop window, built on diat_studio.core."""
