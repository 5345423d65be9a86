"""The tiny SAC budget every test run shares: 100 steps a task, a 32x32 network, updates from
step 50 (each test file adds its own evaluation settings)."""

TINY_AGENT = [
    "steps_per_task=100",
    "agent.net_arch=[32,32]",
    "agent.batch_size=32",
    "agent.buffer_size=1000",
    "agent.random_steps=50",
    "agent.update_after=50",
    "agent.train_freq=1",
    "agent.gradient_steps=1",
]
