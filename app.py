"""Entry point for `python app.py` and for a Hugging Face Space (app_file: app.py)."""

from rschat.ui.app import launch

if __name__ == "__main__":
    launch()
