fn main() {
    print!("{}", revoker::api::crds_yaml().expect("serialize CRDs"));
}
