"""The reporter: the delivery log, final-outcome counters and scheduled report emails."""
