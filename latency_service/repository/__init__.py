"""Data access: functions over a Session. They raise latency_service.errors, never HTTP."""
