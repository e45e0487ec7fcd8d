"""The dispatcher: consumes gateway events and delivers each as its profile describes."""

from dispatcher.worker import Dispatcher

__all__ = ["Dispatcher"]
