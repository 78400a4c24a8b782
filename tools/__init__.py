"""The tools the model acts through, and the sandbox every command runs in."""
