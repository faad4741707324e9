"""In-app notices and the e-mail outbox (delivered by a job; SMTP optional)."""
