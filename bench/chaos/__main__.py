from bench.chaos.run import app

app()
