"""Where findings come from: each connector turns a CSPM source's payloads into the common Finding model."""
