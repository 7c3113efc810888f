"""Lambda adapters: thin handlers over the engine, the SQS work queue, Security Hub write-back, SNS."""
