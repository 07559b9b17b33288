"""The Synthesia adapter: the HTTP client (the only `requests` user) and the S3 upload
(the only `boto3` user)."""
