"""Exploratory check of proxies on a random sample of NAS-Bench-Suite-Zero's NB201 rows: per proxy the median
seconds, Kendall tau with test accuracy, Spearman with NASLib's value, and NASLib's own tau.

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/naslib_sample.py DATASET N PROXIES [INIT] [proxy.opt=v ...]
Numbers in docs come from:
    ... naslib_sample.py cifar10 300 snip,grasp,fisher,grad_norm,jacob_cov,synflow,naswot pytorch
    ... naslib_sample.py cifar10 40 epsilon kaiming epsilon.batch_size=64
    ... naslib_sample.py cifar10 40 epsilon kaiming epsilon.batch_size=64 epsilon.double=1
"""
import csv, gzip, sys, time, random, math
import numpy as np
from scipy.stats import spearmanr, kendalltau
from nasx.data import load_images, synthetic_batch
from nasx.evaluator import Evaluator
from nasx_nats.tss import NatsTopologySpace
from nasx.plugins import Plugins
import os
D=os.environ['NASX_DATA']
ds=sys.argv[1]; n=int(sys.argv[2]); names=sys.argv[3].split(','); init=sys.argv[4] if len(sys.argv)>4 else 'kaiming'
opts={}
for a in sys.argv[5:]:
    k,v=a.split('='); p,o=k.split('.'); d=Plugins().get('proxy',p).defaults[o]; opts.setdefault(p,{})[o]=(v.lower() in ('1','true')) if isinstance(d,bool) else type(d)(v)
rows=[r for r in csv.DictReader(gzip.open(f'{D}/naslib_zc_nb201_subset.csv.gz','rt')) if r['dataset']==ds]
acc={int(r['index']):float(r[f'{ds}_test_acc']) for r in csv.DictReader(gzip.open(f'{D}/nats_tss.csv.gz','rt'))}
rows=random.Random(0).sample(rows,n)
space=NatsTopologySpace(dataset=ds)
if ds=='cifar10': batch=load_images(f'{D}/cifar10_test_512_jpeg.npz',ds)
else: batch=synthetic_batch(space.input_shape, space.num_classes)
pl=Plugins()
proxies=[pl.get('proxy',m)(**opts.get(m,{})) for m in names]
ev=Evaluator(space,proxies,batch,init=init)
res=[]; t=time.time()
for r in rows: res.append(ev.evaluate(space.decode(r['arch'])))
print('total',time.time()-t)
col={'jacob_cov':'jacov','naswot':'nwot'}
for p in proxies:
    s=np.array([e.scores[p.name] for e in res]); sec=np.median([e.seconds[p.name] for e in res])
    a=np.array([acc[int(r['index'])] for r in rows]); ok=np.isfinite(s)
    sign=1 if p.higher_is_better else -1
    line=f'{p.name:10s} med {sec:.3f}s nonfinite {(~ok).sum()} tau_acc {kendalltau(sign*s[ok],a[ok])[0]:.3f}'
    c=col.get(p.name,p.name)
    if c in rows[0]:
        ref=np.array([float(r[c]) if r[c] not in ('',) else np.nan for r in rows]); ok2=ok&np.isfinite(ref)
        line+=f' rho_naslib {spearmanr(s[ok2],ref[ok2])[0]:.3f} (n={ok2.sum()}, ref nonfinite {(~np.isfinite(ref)).sum()}) tau_naslib_acc {kendalltau(ref[ok2],a[ok2])[0]:.3f}'
    print(line)
