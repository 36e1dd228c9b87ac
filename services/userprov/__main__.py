from userprov.cli import app

app(prog_name="userprov")
