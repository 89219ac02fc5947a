"""The owner's calendar as busy intervals: where it comes from (`source`: the configured file
or URL, loading, redaction), a bounded first pass over the file (`scan`), parsing and expansion
of recurring events (`expand`, which imports icalendar: only the refresh task pays for it).

The runner's refresh task (app/calendar.py) puts these together; docs/runner.md, "Calendar",
says what a user sees."""
