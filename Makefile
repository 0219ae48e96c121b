.PHONY: demo test ci
demo:
	cargo run -- plan -f examples/demo/secrets.yaml -i examples/demo/demo-identity.txt
test:
	cargo test --locked
ci:
	bash .ci/run
