"""Video consultations for clinic appointments on a self-hosted Jitsi Meet."""

__version__ = "0.1.0"
